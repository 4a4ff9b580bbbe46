# Removed by the Dockerfile: the image must take its settings from the environment.
DEBUG = True
