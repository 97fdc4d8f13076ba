from synth.cli import main

if __name__ == "__main__":  # a spawned render worker imports this module too
    main()
