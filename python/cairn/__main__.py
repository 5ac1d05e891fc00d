"""`python -m cairn TOOL ...`: the same as the `cairn` command."""

from .tool import console_main

console_main()
