from facedenoise.cli import main

main()
