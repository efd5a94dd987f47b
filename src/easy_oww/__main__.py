from easy_oww.cli import main

main()
