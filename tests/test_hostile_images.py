"""Hostile and faulty image files: nothing crashes the process, nothing is read silently wrong, every error names the file.

Cases that used to kill the interpreter inside a C decoder run in a subprocess, so that a regression fails its test
instead of taking pytest down with it.
"""
import os, resource, struct, subprocess, sys, textwrap, time, warnings, zlib

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from restorelab.core import defaults
from restorelab.data.vision import ImageList, ImageReadError, open_image, read_image_tensor
from restorelab.data.segmentation import open_mask, SegmentationLabelList


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff)

def png_claiming(w: int, h: int, idat: bytes = zlib.compress(b'\0' * 10)) -> bytes:
    "A PNG whose header says `w`x`h` RGB pixels and whose image data is `idat` (valid CRCs, too little data)."
    return (b'\x89PNG\r\n\x1a\n' + _chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0))
            + _chunk(b'IDAT', idat) + _chunk(b'IEND', b''))

def run_py(code: str, timeout=120) -> subprocess.CompletedProcess:
    "Run `code` in a fresh interpreter (a crash there is a failed test here, not a dead pytest)."
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout)


# ---------------------------------------------------------------- crashes and memory blow-ups

@pytest.mark.parametrize('name, data', [('short.png', png_claiming(64, 64)),            # libpng: "Not enough image data"
                                        ('huge-header.png', png_claiming(60000, 60000))], ids=['short', 'huge-header'])
def test_damaged_png_is_an_error_not_a_crash(tmp_path, name, data):
    (tmp_path/name).write_bytes(data)
    r = run_py(f'''
        from restorelab.data.vision import open_image, ImageReadError
        try: open_image({str(tmp_path/name)!r})
        except ImageReadError as e: print('ImageReadError:', e)
    ''')
    assert r.returncode == 0, f'the process died (exit {r.returncode}): {r.stderr[-500:]}'
    assert 'ImageReadError:' in r.stdout and name in r.stdout


def test_one_bad_file_in_a_folder_costs_a_warning(tmp_path):
    for i in range(3): PILImage.new('RGB', (8, 8), (i * 40, 0, 0)).save(tmp_path/f'ok{i}.png')
    (tmp_path/'short.png').write_bytes(png_claiming(64, 64))
    r = run_py(f'''
        import warnings
        from restorelab.data.vision import ImageList
        with warnings.catch_warnings(record=True) as ws:
            warnings.simplefilter('always')
            il = ImageList.from_folder({str(tmp_path)!r}, skip_bad=True)
        print(len(il), [str(w.message) for w in ws])
    ''')
    assert r.returncode == 0, r.stderr[-500:]
    assert r.stdout.startswith('3 ') and 'short.png' in r.stdout


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    "A 16000x16000 grey PNG of zeros is ~250 KB on disk and would be a 768 MB tensor: refused from its header."
    PILImage.new('L', (16000, 16000)).save(tmp_path/'bomb.png')
    assert (tmp_path/'bomb.png').stat().st_size < 1_000_000
    r = run_py(f'''
        import resource
        from restorelab.data.vision import read_image_tensor, ImageReadError
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try: read_image_tensor({str(tmp_path/'bomb.png')!r})
        except ImageReadError as e: print('refused:', e)
        print('grew_mb', (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
    ''')
    assert r.returncode == 0, r.stderr[-500:]
    assert 'refused:' in r.stdout and 'bomb.png' in r.stdout and 'max_image_pixels' in r.stdout
    assert int(r.stdout.split('grew_mb')[1]) < 100, r.stdout


def test_pixel_limit_has_a_default_and_can_be_raised(tmp_path):
    PILImage.new('RGB', (20, 20)).save(tmp_path/'a.png')
    old = defaults.max_image_pixels
    try:
        defaults.max_image_pixels = 399
        with pytest.raises(ImageReadError, match=r'a\.png is too large \(20x20 pixels'): open_image(tmp_path/'a.png')
        defaults.max_image_pixels = 400
        assert open_image(tmp_path/'a.png').shape == (3, 20, 20)
    finally: defaults.max_image_pixels = old


def test_damaged_jpeg_names_the_file(tmp_path):
    PILImage.fromarray((np.random.rand(32, 32, 3) * 255).astype(np.uint8)).save(tmp_path/'a.jpg')
    data = (tmp_path/'a.jpg').read_bytes()
    (tmp_path/'cut.jpg').write_bytes(data[:len(data) // 2])
    with pytest.raises(ImageReadError, match='cut.jpg'): open_image(tmp_path/'cut.jpg')


# ---------------------------------------------------------------- image modes: read right, or refused by name

def test_float_tiff_in_unit_range_reads_as_its_values(tmp_path):
    a = np.linspace(0, 1, 24, dtype=np.float32).reshape(4, 6)
    PILImage.fromarray(a, mode='F').save(tmp_path/'f.tif')
    t = read_image_tensor(tmp_path/'f.tif', 'L')
    assert t.shape == (1, 4, 6) and t.dtype == torch.uint8
    assert (t[0].numpy() == np.round(a * 255).astype(np.uint8)).all()


def test_float_tiff_out_of_range_is_refused(tmp_path):
    PILImage.fromarray(np.full((4, 6), 300., np.float32), mode='F').save(tmp_path/'hdr.tif')
    with pytest.raises(ImageReadError, match=r'hdr\.tif holds 32-bit float pixels in \[300, 300\]'):
        read_image_tensor(tmp_path/'hdr.tif')


def test_palette_mask_gives_its_indices(tmp_path):
    idx = np.array([[0, 1, 2], [2, 1, 0]], dtype=np.uint8)
    im = PILImage.fromarray(idx, mode='P')
    im.putpalette([255, 255, 255, 10, 20, 30, 200, 0, 0] + [0] * (256 * 3 - 9))   # colours unrelated to the indices
    im.save(tmp_path/'m.png')
    assert (open_mask(tmp_path/'m.png').data[0].numpy() == idx).all()


def test_colour_mask_is_refused_naming_file_and_mode(tmp_path):
    rgb = np.zeros((4, 4, 3), np.uint8); rgb[:2] = (128, 64, 0); rgb[2:] = (0, 64, 128)   # same luminance-ish, other classes
    PILImage.fromarray(rgb).save(tmp_path/'colour.png')
    with pytest.raises(ImageReadError, match=r'colour\.png is a RGB image with distinct colours'):
        open_mask(tmp_path/'colour.png')
    grey_as_rgb = np.repeat(np.array([[0, 1], [2, 3]], np.uint8)[..., None], 3, axis=2)
    PILImage.fromarray(grey_as_rgb).save(tmp_path/'grey.png')   # grey values stored as RGB: the indices are clear
    assert open_mask(tmp_path/'grey.png').data[0].tolist() == [[0, 1], [2, 3]]


def test_bilevel_mask_is_zero_one(tmp_path):
    PILImage.fromarray(np.array([[0, 255], [255, 0]], np.uint8)).convert('1').save(tmp_path/'b.png')
    assert open_mask(tmp_path/'b.png').data[0].tolist() == [[0, 1], [1, 0]]


def test_invalid_convert_mode_names_the_argument(tmp_path):
    PILImage.new('RGB', (4, 4)).save(tmp_path/'a.png')
    with pytest.raises(ValueError, match="convert_mode='RBG' is not an image mode"): open_image(tmp_path/'a.png', convert_mode='RBG')
    with pytest.raises(ValueError, match="convert_mode='grey'"): ImageList([tmp_path/'a.png'], convert_mode='grey')


# ---------------------------------------------------------------- the decoded-image cache

def _small_folder(path, n=4, value=0):
    path.mkdir(parents=True, exist_ok=True)
    for i in range(n): PILImage.new('L', (8, 8), value + i).save(path/f'{i}.bmp')   # uncompressed: one size on disk
    return ImageList.from_folder(path, convert_mode='L')


def test_replaced_file_with_same_size_and_old_mtime_is_not_stale(tmp_path):
    il = _small_folder(tmp_path/'imgs')
    first = il.tensors().clone()
    fn = tmp_path/'imgs'/'0.bmp'
    st = fn.stat()
    PILImage.new('L', (8, 8), 200).save(fn)                      # same format and size on disk ...
    assert fn.stat().st_size == st.st_size
    os.utime(fn, ns=(st.st_atime_ns, st.st_mtime_ns))             # ... and the old time stamp
    again = ImageList.from_folder(tmp_path/'imgs', convert_mode='L').tensors()
    assert int(again[0, 0, 0, 0]) == 200 and int(first[0, 0, 0, 0]) == 0


def test_corrupt_cache_file_is_a_warning_naming_it_then_rebuilt(tmp_path, _restorelab_home):
    il = _small_folder(tmp_path/'imgs', value=10)
    good = il.tensors().clone()
    cache = next((_restorelab_home/'cache').glob('images-*.pt'))
    cache.write_bytes(b'not a tensor file')
    with pytest.warns(UserWarning, match=f'{cache.name}.*unreadable.*rebuilding'):
        t = ImageList.from_folder(tmp_path/'imgs', convert_mode='L').tensors()
    assert torch.equal(t, good)
    torch.save(torch.zeros(3, dtype=torch.uint8), cache)                       # a tensor, but not these images
    with pytest.warns(UserWarning, match='does not hold these 4 images'):
        t = ImageList.from_folder(tmp_path/'imgs', convert_mode='L').tensors()
    assert torch.equal(t, good)


def test_mixed_sizes_without_size_say_so(tmp_path):
    "Images of several sizes read one by one (not preloaded) and batched without `size=`: a message, not torch's stack error."
    from restorelab.data.core import CategoryList
    for i, hw in enumerate([(100, 90), (100, 90), (120, 80), (120, 80)]):
        PILImage.new('RGB', hw[::-1]).save(tmp_path/f'{i}.png')
    data = (ImageList.from_folder(tmp_path).split_by_idx([0]).label_from_func(lambda o: 'a', label_cls=CategoryList)
            .transform(([], [])).databunch(bs=3))
    with pytest.raises(ValueError, match=r'items of different sizes in one batch.*size='): next(iter(data.train_dl))
