"""`make bench`: this assistant against the stock `rasa init` bot (`python -m bench.run`)."""
