import sys

from spotify_pipeline.cli import main

sys.exit(main())
