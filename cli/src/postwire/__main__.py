from postwire.main import cli

cli()
