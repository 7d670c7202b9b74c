"""Cluster entry point of the ADD job (submit with the Ray Jobs API or a KubeRay RayJob).

    python jobs/decompose.py --config jobs/configs/decompose.yaml \\
        --input s3://lake/photos --output s3://lake/add/v1 --ray-address auto
"""

import sys

from liwi.cli import main

if __name__ == "__main__":
    sys.exit(main(["decompose", *sys.argv[1:]]))
