"""Stand-in for docker/python-docker-dev's app.py: Flask, no database."""
import getpass
import platform

from flask import Flask

app = Flask(__name__)


@app.route("/")
def hello_world():
    return f"Hello from Flask on Python {platform.python_version()} as {getpass.getuser()}!\n"


if __name__ == "__main__":
    app.run(host="0.0.0.0")
