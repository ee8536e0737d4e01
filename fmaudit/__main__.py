from fmaudit.cli import run

run()
