# Sourced by the run and test scripts: local defaults for what settings.py reads from the
# environment. Anything already exported (CI, production) wins. SECRET_KEY is not set here:
# settings.py falls back to the var/secret-key that setup.sh generates, so a plain shell's
# manage.py works the same way.
export PYTHONUNBUFFERED=1
