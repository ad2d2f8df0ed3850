"""The preview PNG (issue 35, item 6): the same picture whatever the storage orientation, titled rows and
side letters."""

import zlib

import numpy as np

from conftest import phantom, run_cli, save_nifti


def _pixels(png: bytes) -> np.ndarray:
    """Decode the grayscale, unfiltered PNG that mrsr writes."""
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    idat = png.index(b"IDAT")
    length = int.from_bytes(png[idat - 4:idat], "big")
    raw = np.frombuffer(zlib.decompress(png[idat + 4:idat + 4 + length]), np.uint8).reshape(height, width + 1)
    assert (raw[:, 0] == 0).all()
    return raw[:, 1:]


def test_ras_and_lps_copies_give_the_same_picture(tmp_path):
    data = phantom((20, 24, 18))
    data[12:18, 15:21, 6:14] += 300.0  # a bright block towards the right and anterior, through the middle axial slice
    ras = np.diag([2.0, 2.0, 2.0, 1.0])
    ras[:3, 3] = (-20, -24, -18)
    # LPS storage: voxel axes 0 and 1 reversed, every voxel at the same world position
    lps = ras @ np.array([[-1, 0, 0, 19], [0, -1, 0, 23], [0, 0, 1, 0], [0, 0, 0, 1]], float)
    assert np.allclose((lps @ [19, 23, 0, 1])[:3], (ras @ [0, 0, 0, 1])[:3])
    pictures = []
    for name, volume, affine in [("ras", data, ras), ("lps", data[::-1, ::-1].copy(), lps)]:
        src = save_nifti(tmp_path / f"{name}.nii.gz", volume, affine)
        run_cli("upscale", src, tmp_path / f"{name}_sr.nii.gz", "--factor", "2", "--method", "spline",
                "--preview", tmp_path / f"{name}.png", check=0)
        pictures.append(_pixels((tmp_path / f"{name}.png").read_bytes()))
    np.testing.assert_array_equal(pictures[0], pictures[1])
    image = pictures[0]
    assert image[:11, :40].max() == 255  # the INPUT title
    # output grid 40×48×36: panels sagittal 48 wide, coronal 40, axial 40 (from column 96), 48 high under the
    # 11-row title.  In the output row's axial panel the block lies right (neurological) and anterior (up).
    axial = image[-48:, 96:136]
    bright = np.argwhere(axial[:20] > 200)  # above the side letters
    assert len(bright) and bright[:, 1].mean() > 20 and bright[:, 0].mean() < 20


def test_side_letters_and_titles_are_drawn():
    from mrsr_cli.app.preview import _row, to_ras

    volume = np.zeros((40, 44, 36), np.float32)
    volume[30:36, 10:34, 8:28] = 1.0  # right side in a RAS volume
    row = _row(to_ras(volume, np.eye(4)), 1.0, "OUTPUT")
    assert row[2:9, 2:2 + 6 * 6].max() == 255 and row[2:9, 2 + 6 * 6 + 4:].max() == 0
    # coronal panel: columns 44 + 4 .. 44 + 4 + 40; the block (x 30-36) is right of centre, as in neurological view
    coronal = row[11:, 48:88]
    bright = np.argwhere(coronal[:, 8:32] > 200)  # away from the side letters at the edges
    assert bright[:, 1].mean() + 8 > 20
