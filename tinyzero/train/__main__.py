"""`python -m tinyzero.train +recipe=NAME [KEY=VALUE ...]`."""

from tinyzero.train.app import main

main()
