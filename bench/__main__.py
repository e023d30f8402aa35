from bench.run import main
from pipeline.cli import run

run(main)
