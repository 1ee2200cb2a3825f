from roomwatch.cli.main import main

main()
