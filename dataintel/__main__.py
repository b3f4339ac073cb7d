from dataintel.cli import main

main()
