"""``python -m detect.cli`` runs the ``detladder`` command line."""

from detect.cli import main

main()
