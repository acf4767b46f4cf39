"""``python -m rqe_wrappers.conformance --out docs/envs.md``."""

from rqe_wrappers.conformance.page import main

if __name__ == "__main__":
    raise SystemExit(main())
