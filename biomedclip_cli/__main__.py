from biomedclip_cli.cli import main

main()
