from holobazaar.cli import main

main()
