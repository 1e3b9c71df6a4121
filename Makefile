# Two commands for a newcomer on a fresh Debian machine with Python >= 3.11 (python3-venv, make, git):
#   make lab         installs what is missing, then opens the course in JupyterLab (your copy, work/)
#   make test        installs what is missing, then runs the whole test suite
# and one for instructors:
#   make instructor  JupyterLab at the repository root, with nbgrader's Formgrader
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
# nbgrader runs `alembic` as a subprocess when it creates its database: the venv's bin must be on PATH.
export PATH := $(BIN):$(PATH)
STAMP := $(VENV)/.installed

.PHONY: lab instructor test install system-packages clean release class-demo class-browser-test

install: $(STAMP)

# A venv whose pip does not run (a `python3 -m venv` that failed half-way: Debian without
# python3-venv) is made again instead of failing later with "No module named pip".
$(STAMP): pyproject.toml
	@$(BIN)/python -m pip --version >/dev/null 2>&1 || { rm -rf $(VENV); $(PYTHON) -m venv $(VENV) || { \
	  rm -rf $(VENV); echo "cannot create a virtual environment: install python3-venv (Debian/Ubuntu: sudo apt-get install python3-venv)"; exit 1; }; }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	@$(BIN)/jupyter labextension list 2>&1 | grep -q "@jupyter/nbgrader.*enabled" || { \
	  echo "nbgrader's JupyterLab extension is not installed in $(VENV); make clean && make install"; exit 1; }
	touch $(STAMP)

# bubblewrap sandboxes each submission's kernel while grading; iproute2 gives `ss` for the
# connection-life lesson and `ip` and `tc` for the lab network (course.netlab), which also needs
# nftables (its NAT and its losses); conntrack shows a lab router's translations, tcpdump reads a
# lab's capture, util-linux gives setpriv and unshare (the grader and the lab tests), nc and socat
# are what a newcomer talks to the command-line peers with (tested). Installed when
# we are root (CI, a course VM); otherwise say what to do. Tools in /usr/sbin count for every user.
system-packages:
	@missing=; for tool in bwrap ss ip tc nft conntrack tcpdump setpriv unshare nc socat; do \
	  PATH="$$PATH:/usr/sbin:/sbin" command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap iproute2 nftables conntrack tcpdump util-linux netcat-openbsd socat) >/dev/null; \
	else echo "note: missing:$$missing; as root: apt-get install bubblewrap iproute2 nftables conntrack tcpdump util-linux netcat-openbsd socat (the grader needs bwrap, the lab network ip and nft)"; fi

# Port 0: the kernel chooses a free port (two learners on one host never collide); Jupyter prints the URL.
LAB_PORT ?= 0
LAB_ARGS ?=
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)

# The learner works in work/ (untracked): new assignments are added, edited ones never touched.
# nbgrader's extensions are off (deploy/learner): no exchange here, and Formgrader shows solutions.
WORK ?= $(CURDIR)/work
lab: install
	$(BIN)/python -m course.workspace $(WORK)
	cd $(WORK) && JUPYTER_CONFIG_DIR=$(CURDIR)/deploy/learner $(BIN)/jupyter lab --ip=127.0.0.1 --port=$(LAB_PORT) $(ROOT_FLAG) $(LAB_ARGS)

instructor: install
	cd $(CURDIR) && $(BIN)/jupyter lab --ip=127.0.0.1 --port=$(LAB_PORT) $(ROOT_FLAG) $(LAB_ARGS)

test: install system-packages
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis

release: install
	$(BIN)/python -m autograder.release

# A whole class on JupyterHub (deploy/jupyterhub): as root; the class's environment and the proxy are
# installed first (registries), then the class runs in a network namespace with only lo.
# class-demo: three students through the nbgrader extension's HTTP API.
# class-browser-test: the same class with a fourth student, and the instructor, in Debian's Chromium
# driven by Playwright (pyproject's [class] extra).
class-demo: install system-packages
	@[ "$$(id -u)" = 0 ] || { echo "make $@ creates accounts: run it as root"; exit 2; }
	$(BIN)/python -m pip install --quiet -e '.[test,class]'
	$(BIN)/python deploy/jupyterhub/class_demo.py --prepare
	unshare --net -- sh -c 'ip link set lo up && exec "$$0" deploy/jupyterhub/class_demo.py' $(BIN)/python

class-browser-test: install system-packages
	@[ "$$(id -u)" = 0 ] || { echo "make $@ creates accounts: run it as root"; exit 2; }
	command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)
	$(BIN)/python -m pip install --quiet -e '.[test,class]'
	$(BIN)/python deploy/jupyterhub/class_demo.py --prepare
	unshare --net -- sh -c 'ip link set lo up && exec "$$0" deploy/jupyterhub/class_demo.py --browser' $(BIN)/python
