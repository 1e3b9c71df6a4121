"""`python -m autograder grade ...`: see autograder.cli."""
import sys

from autograder.cli import main

sys.exit(main())
