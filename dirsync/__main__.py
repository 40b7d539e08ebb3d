from dirsync.cli import main

main()
