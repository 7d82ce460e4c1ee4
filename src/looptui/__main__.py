from looptui.cli import main

main()
