# Sourced by the run and test scripts: local defaults for what settings.py reads from the
# environment. Anything already exported (CI, production) wins.
export SECRET_KEY=${SECRET_KEY:-$(cat var/secret-key)}
export PYTHONUNBUFFERED=1
