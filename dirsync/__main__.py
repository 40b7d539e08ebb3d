from dirsync.cli.entry import main

main()
