import sys

from autograder.samples import main

sys.exit(main())
