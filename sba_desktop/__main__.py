from sba_desktop.app import main

if __name__ == "__main__":  # a spawned helper process imports this module too
    raise SystemExit(main())
