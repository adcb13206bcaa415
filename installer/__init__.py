"""The installer behind install.py: standard library only, one module per job.

layout (where things go) · backend (virtualenv and packages from pyproject.toml) ·
models (sha256 check) · gimp (GIMP folders and Pythons) · plugins (copy and config) ·
pyzmq_vendor · flatpak · smoke (the sample colorized through the daemon) ·
record (what was written) · check · uninstall · main (the command line).
"""
