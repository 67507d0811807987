from solar_platform.cli import main

main()
