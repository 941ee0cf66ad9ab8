"""Several replicas behind nginx: the production configuration (see deploy/README.md)."""
