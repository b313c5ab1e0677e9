from dpip.cli import main

main()
