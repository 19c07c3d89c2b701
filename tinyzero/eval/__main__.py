"""`python -m tinyzero.eval model=... data=... output_dir=...`; `--help` lists every option."""

from tinyzero.eval.app import main

if __name__ == "__main__":
    main()
