#!/usr/bin/env python3
"""One-command set-up of GIMP Colorize: backend virtualenv, models, GIMP plug-ins, smoke test.

    python3 install.py              install (safe to run again) and colorize the bundled sample
    python3 install.py --check      diagnose an existing installation
    python3 install.py --uninstall  remove everything install.py wrote

Standard library only: it runs before anything else is installed. The work is done by
the installer package beside this file.
"""

import sys

from installer.main import main

if __name__ == "__main__":
    sys.exit(main())
