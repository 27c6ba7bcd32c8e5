"""One module per ``crab-eval`` subcommand: ``add_parser(subparsers)`` registers it, ``run(args)`` executes it."""
