"""JupyterHub for a class of this course: one real local account per person, nbgrader's exchange,
the Assignments tab for students, Formgrader for the instructor and the teaching assistant, and the
course's sandboxed grader as the way to autograde.

Tested with JupyterHub 6.1.1 (PyPI) and configurable-http-proxy 5.3.0 (npm): `make class-demo`
installs both and runs a whole class through this file. Everything a deployment chooses comes from
the environment, so the same file serves the demo and a real host:

    CLASS_DIR     the class's folder: the exchange (CLASS_DIR/exchange), the shared course folder
                  (CLASS_DIR/course), the hub's database and cookie secret (CLASS_DIR/hub)
    CLASS_VENV    the Python environment every single-user server runs from (readable by every user)
    CLASS_PROXY   the configurable-http-proxy executable
    CLASS_USERS   the accounts allowed to log in, comma separated
    CLASS_STAFF   the instructor and teaching assistants among them (Formgrader), comma separated
    CLASS_ADMIN_TOKEN  (optional) the API token of the "class-admin" service that creates users,
                  tokens and servers (the demo drives the class through it)
    CLASS_BIND    the hub's public URL (default http://127.0.0.1:8000)
"""
import os

c = get_config()  # noqa: F821

class_dir = os.environ["CLASS_DIR"]
venv = os.environ["CLASS_VENV"]
users = [u for u in os.environ.get("CLASS_USERS", "").split(",") if u]
staff = [u for u in os.environ.get("CLASS_STAFF", "").split(",") if u]

c.JupyterHub.bind_url = os.environ.get("CLASS_BIND", "http://127.0.0.1:8000")
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.db_url = "sqlite:///" + os.path.join(class_dir, "hub", "jupyterhub.sqlite")
c.JupyterHub.cookie_secret_file = os.path.join(class_dir, "hub", "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = os.path.join(class_dir, "hub", "jupyterhub.pid")
c.ConfigurableHTTPProxy.command = [os.environ["CLASS_PROXY"]]
c.ConfigurableHTTPProxy.pid_file = os.path.join(class_dir, "hub", "proxy.pid")

# Real local accounts, logged in with their system password (PAM), each server run as its user.
c.JupyterHub.authenticator_class = "pam"
c.Authenticator.allowed_users = set(users)
c.Authenticator.admin_users = set(staff[:1])
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = [os.path.join(venv, "bin", "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab"
c.Spawner.environment = {"PATH": os.path.join(venv, "bin") + ":/usr/bin:/bin", "CLASS_DIR": class_dir}
c.Spawner.http_timeout = 120
c.Spawner.start_timeout = 120



def staff_work_in_the_course(spawner):
    """The instructor and TAs start in the shared course folder: Formgrader needs the course inside
    the server's root folder, and nbgrader reads the course's nbgrader_config.py from there."""
    if spawner.user.name in staff:
        spawner.notebook_dir = os.path.join(class_dir, "course")


c.Spawner.pre_spawn_hook = staff_work_in_the_course

token = os.environ.get("CLASS_ADMIN_TOKEN")
if token:
    c.JupyterHub.services = [{"name": "class-admin", "api_token": token}]
    c.JupyterHub.load_roles = [{
        "name": "class-admin",
        "scopes": ["admin:users", "admin:servers", "tokens", "list:users", "read:users"],
        "services": ["class-admin"],
    }]
