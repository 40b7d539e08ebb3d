from dirsync.entry import main

main()
