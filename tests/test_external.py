"Downloads over a loopback HTTP server, hostile archives, checksum errors and offline lookup for `restorelab.data.external`."
import hashlib, http.server, io, os, tarfile, threading, zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

import restorelab.data.external as ext
from restorelab.data.external import (URLs, DatasetURL, ChecksumError, UnsafeArchiveError, untar_data, download_url,
                                      extract_archive, file_sha256, find_archive, is_available, archive_path, data_path,
                                      models_path, restorelab_home)

# the full archives (shared/data) when RESTORELAB_ARCHIVE names them, as in CI's archive step; the default run has none
SHARED = Path(os.environ['RESTORELAB_ARCHIVE']) if os.environ.get('RESTORELAB_ARCHIVE') else None
needs_shared = pytest.mark.skipif(SHARED is None or not (SHARED/'SHA256SUMS').is_file(),
                                  reason='no full archives: set RESTORELAB_ARCHIVE to shared/data')


# ---------------------------------------------------------------- helpers

def make_tar(path, members, mode='w:gz'):
    "Write a tar at `path` from `(name, bytes | None | TarInfo)` pairs (None: a folder)."
    path = Path(path); path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, mode) as tar:
        for name, content in members:
            if isinstance(content, tarfile.TarInfo):
                content.name = name; tar.addfile(content)
            elif content is None:
                info = tarfile.TarInfo(name); info.type = tarfile.DIRTYPE; info.mode = 0o755; tar.addfile(info)
            else:
                info = tarfile.TarInfo(name); info.size = len(content); tar.addfile(info, io.BytesIO(content))
    return path

def link(target, kind=tarfile.SYMTYPE):
    info = tarfile.TarInfo(); info.type, info.linkname = kind, target
    return info

def leftovers(folder):
    "Hidden temporary files/folders our code could leave behind in `folder`."
    return [p.name for p in Path(folder).iterdir() if p.name.endswith(('.tmp', '.old'))] if Path(folder).exists() else []

def sha(data: bytes) -> str: return hashlib.sha256(data).hexdigest()

TINY_MEMBERS = [('tiny', None), ('tiny/train', None), ('tiny/train/a.txt', b'a' * 100), ('tiny/valid/b.txt', b'b')]


@pytest.fixture
def home(tmp_path, monkeypatch):
    "A fresh RESTORELAB_HOME and no RESTORELAB_ARCHIVE."
    monkeypatch.setenv('RESTORELAB_HOME', str(tmp_path/'home'))
    monkeypatch.delenv('RESTORELAB_ARCHIVE', raising=False)
    return tmp_path/'home'


@pytest.fixture
def server(tmp_path, monkeypatch):
    "An HTTP server on 127.0.0.1 (port chosen by the OS) serving `root`, recording each request path."
    for var in ('http_proxy', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY', 'all_proxy', 'ALL_PROXY'):
        monkeypatch.delenv(var, raising=False)  # a proxy would send loopback requests elsewhere
    root = tmp_path/'served'; root.mkdir()
    requests = []
    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs): super().__init__(*args, directory=str(root), **kwargs)
        def log_message(self, *args): pass
        def do_GET(self):
            requests.append(self.path)
            super().do_GET()
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield SimpleNamespace(url=f'http://127.0.0.1:{httpd.server_address[1]}', root=root, requests=requests)
    httpd.shutdown(); httpd.server_close(); thread.join(5)


# ---------------------------------------------------------------- locations

def test_locations_read_env_at_call_time(tmp_path, monkeypatch):
    monkeypatch.setenv('RESTORELAB_HOME', str(tmp_path/'a'))
    assert (archive_path(), data_path(), models_path()) == (tmp_path/'a'/'archive', tmp_path/'a'/'data', tmp_path/'a'/'models')
    monkeypatch.setenv('RESTORELAB_HOME', str(tmp_path/'b'))
    assert data_path() == tmp_path/'b'/'data'
    monkeypatch.delenv('RESTORELAB_HOME')
    monkeypatch.setenv('HOME', str(tmp_path/'user'))
    assert restorelab_home() == tmp_path/'user'/'.restorelab'


def test_archive_env_must_be_a_folder(home, tmp_path, monkeypatch):
    monkeypatch.setenv('RESTORELAB_ARCHIVE', str(tmp_path/'missing'))
    with pytest.raises(NotADirectoryError, match='missing'): untar_data(DatasetURL('http://127.0.0.1:9/x.tgz'))
    (tmp_path/'a').mkdir(); (tmp_path/'b').mkdir()
    monkeypatch.setenv('RESTORELAB_ARCHIVE', f'{tmp_path/"a"}{os.pathsep}{tmp_path/"b"}')
    assert ext.archive_folders() == [tmp_path/'a', tmp_path/'b', archive_path(), *ext.bundled_archive_folders()]


# ---------------------------------------------------------------- URLs

def test_urls_entries():
    assert URLs.MNIST == 'https://s3.amazonaws.com/fast-ai-imageclas/mnist_png.tgz'
    assert URLs.PETS == 'https://s3.amazonaws.com/fast-ai-imageclas/oxford-iiit-pet.tgz'
    assert URLs.CAMVID == 'https://s3.amazonaws.com/fast-ai-imagelocal/camvid.tgz'
    assert URLs.LSUN_BEDROOMS == 'https://s3.amazonaws.com/fast-ai-imageclas/bedroom.tgz'
    assert [u.folder for u in (URLs.MNIST, URLs.PETS, URLs.CAMVID, URLs.LSUN_BEDROOMS)] == \
        ['mnist_png', 'oxford-iiit-pet', 'camvid', 'bedroom']
    assert 'mnist_png' in repr(URLs.MNIST)
    # the SegNet CamVid is its own entry: fastai's 32-class CAMVID has another layout and no stand-in
    assert URLs.CAMVID.offline == {} and URLs.CAMVID_SEGNET.folder == 'camvid_segnet'


SAMPLES = [URLs.MNIST_TINY, URLs.PETS_TINY, URLs.CAMVID_TINY, URLs.LSUN_TINY, URLs.STYLE_TINY]

@pytest.mark.parametrize('url', SAMPLES, ids=lambda u: u.folder)
def test_samples_ship_with_the_clone(home, monkeypatch, url):
    "Each sample is found in the clone (package assets or samples/), verified and extracted with no network."
    monkeypatch.delenv('RESTORELAB_ARCHIVE', raising=False)
    path, digest = find_archive(url)
    assert path.parent in ext.bundled_archive_folders() and digest == url.sha256
    assert untar_data(url) == data_path()/url.folder and any((data_path()/url.folder).iterdir())


def test_samples_keep_the_full_layouts(home):
    "A lesson's cells read a sample and its full dataset alike."
    mnist = untar_data(URLs.MNIST_TINY)
    assert sorted(p.name for p in mnist.iterdir()) == ['testing', 'training']
    assert sorted(p.name for p in (mnist/'training').iterdir()) == [str(i) for i in range(10)]
    camvid = untar_data(URLs.CAMVID_TINY)
    assert {'train', 'trainannot', 'val', 'valannot', 'test', 'testannot', 'codes.txt'} <= {p.name for p in camvid.iterdir()}
    for split in ('train', 'val', 'test'):
        stems = lambda d: sorted(p.stem for p in (camvid/d).iterdir())
        assert stems(split) == stems(f'{split}annot') and stems(split)
    pets = untar_data(URLs.PETS_TINY)
    breeds = {p.stem.rsplit('_', 1)[0] for p in (pets/'images').glob('*.jpg')}
    assert len(breeds) == 37   # every breed


def test_missing_full_dataset_says_what_to_set(home, monkeypatch):
    "No archive offline and no network: an error at once naming the archives and RESTORELAB_ARCHIVE, never a sample."
    url = DatasetURL('http://127.0.0.1:9/full.tgz', offline={'full_small.tgz': '0' * 64})
    with pytest.raises(ext.DatasetUnavailableError, match='RESTORELAB_ARCHIVE') as err: untar_data(url)
    assert 'full.tgz or full_small.tgz' in str(err.value) and not (data_path()/'full').exists()


@needs_shared
def test_urls_know_the_shipped_archives():
    "Every archive of shared/data is registered under its name and SHA256SUMS hash, and verifies."
    sums = dict(reversed(line.split()) for line in (SHARED/'SHA256SUMS').read_text().splitlines() if line.strip())
    full = (URLs.MNIST, URLs.PETS, URLs.CAMVID_SEGNET, URLs.LSUN_BEDROOMS, URLs.STYLE_IMAGES)
    known = {name: h for u in full for name, h in [*u.offline.items(), *([(u.fname, u.sha256)] if u.sha256 else [])]}
    assert known == sums


@needs_shared
def test_find_shipped_archives(home, monkeypatch):
    monkeypatch.setenv('RESTORELAB_ARCHIVE', str(SHARED))
    for url in (URLs.MNIST, URLs.PETS, URLs.CAMVID_SEGNET, URLs.LSUN_BEDROOMS, URLs.STYLE_IMAGES):
        path, digest = find_archive(url)
        assert path.parent == SHARED and digest in {url.sha256, *url.offline.values()}
        assert is_available(url)


# ---------------------------------------------------------------- download_url

def test_download_http(home, server, tmp_path):
    data = os.urandom(300_000)
    (server.root/'data.bin').write_bytes(data)
    out = download_url(f'{server.url}/data.bin', tmp_path/'dl'/'data.bin', sha256=sha(data))
    assert out.read_bytes() == data and server.requests == ['/data.bin']
    assert leftovers(tmp_path/'dl') == [] and [p.name for p in (tmp_path/'dl').iterdir()] == ['data.bin']
    # a folder as dest: the URL's file name is used
    assert download_url(f'{server.url}/data.bin', tmp_path/'dl', force=True) == tmp_path/'dl'/'data.bin'


def test_download_progress_bar(home, server, tmp_path, monkeypatch, capsys):
    "The fastprogress bar path (normally only drawn in a notebook or terminal) works."
    monkeypatch.setattr(ext, 'progress_visible', lambda: True)
    data = os.urandom(3_000_000)
    (server.root/'big.bin').write_bytes(data)
    out = download_url(f'{server.url}/big.bin', tmp_path/'big.bin', chunk_size=1 << 16)
    assert out.read_bytes() == data


def test_download_checksum_mismatch(home, server, tmp_path):
    data = b'hello' * 1000
    (server.root/'data.bin').write_bytes(data)
    with pytest.raises(ChecksumError) as err:
        download_url(f'{server.url}/data.bin', tmp_path/'dl'/'data.bin', sha256='0' * 64)
    msg = str(err.value)
    assert 'data.bin' in msg and '0' * 64 in msg and sha(data) in msg
    assert isinstance(err.value, ValueError) and err.value.actual == sha(data)
    assert not (tmp_path/'dl'/'data.bin').exists() and list((tmp_path/'dl').iterdir()) == []


def test_download_http_error_names_url(home, server, tmp_path):
    with pytest.raises(OSError, match='missing.bin') as err: download_url(f'{server.url}/missing.bin', tmp_path/'x.bin')
    assert '404' in str(err.value)
    assert not (tmp_path/'x.bin').exists()


@pytest.mark.parametrize('kind', ['file_url', 'path', 'str'])
def test_download_local_sources(home, tmp_path, kind):
    src = tmp_path/'src dir'/'a.bin'; src.parent.mkdir()
    src.write_bytes(b'local bytes')
    url = {'file_url': src.as_uri(), 'path': src, 'str': str(src)}[kind]
    out = download_url(url, tmp_path/'out', sha256=sha(b'local bytes'))
    assert out.read_bytes() == b'local bytes'
    missing = {'file_url': (tmp_path/'nope.bin').as_uri(), 'path': tmp_path/'nope.bin', 'str': str(tmp_path/'nope.bin')}[kind]
    with pytest.raises(FileNotFoundError, match='nope.bin'): download_url(missing, tmp_path/'out2')
    assert not (tmp_path/'out2').exists()


def test_download_keeps_or_refetches(home, server, tmp_path):
    (server.root/'d.bin').write_bytes(b'v1')
    dest = tmp_path/'d.bin'
    download_url(f'{server.url}/d.bin', dest)
    download_url(f'{server.url}/d.bin', dest)                      # kept: no request
    assert len(server.requests) == 1
    (server.root/'d.bin').write_bytes(b'v2')
    download_url(f'{server.url}/d.bin', dest, sha256=sha(b'v2'))   # present but wrong hash: fetched again
    assert dest.read_bytes() == b'v2' and len(server.requests) == 2
    download_url(f'{server.url}/d.bin', dest, force=True)
    assert len(server.requests) == 3


def test_unsupported_scheme(home, tmp_path):
    with pytest.raises(ValueError, match='gopher'): download_url('gopher://127.0.0.1/x.tgz', tmp_path/'x.tgz')


# ---------------------------------------------------------------- extraction

@pytest.mark.parametrize('mode', ['w', 'w:gz', 'w:bz2', 'w:xz', 'zip'])
def test_extract_formats(tmp_path, mode):
    if mode == 'zip':
        arc = tmp_path/'a.zip'
        with zipfile.ZipFile(arc, 'w') as zf:
            zf.writestr('tiny/train/a.txt', b'a' * 100); zf.writestr('tiny/valid/b.txt', b'b')
    else: arc = make_tar(tmp_path/'a.tar', TINY_MEMBERS, mode)
    dest = extract_archive(arc, tmp_path/'out')
    assert (dest/'tiny'/'train'/'a.txt').read_bytes() == b'a' * 100 and (dest/'tiny'/'valid'/'b.txt').read_bytes() == b'b'
    flat = extract_archive(arc, tmp_path/'flat', strip_top=True)
    assert sorted(p.name for p in flat.iterdir()) == ['train', 'valid']
    assert leftovers(tmp_path) == []


def test_extract_replaces_and_merges(tmp_path):
    arc = make_tar(tmp_path/'a.tgz', TINY_MEMBERS)
    dest = tmp_path/'ds'; dest.mkdir(); (dest/'mine.txt').write_text('old')
    with pytest.warns(UserWarning, match='mine.txt'): extract_archive(arc, dest, strip_top=True)   # dest replaced ...
    assert sorted(p.name for p in dest.iterdir()) == ['mine.txt', 'train', 'valid']                # ... its own file kept
    parent = tmp_path/'parent'; parent.mkdir(); (parent/'keep.txt').write_text('keep')
    (parent/'tiny').mkdir(); (parent/'tiny'/'mine.txt').write_text('old')
    with pytest.warns(UserWarning, match='tiny/mine.txt'): extract_archive(arc, parent)   # like tar -C, same name replaced
    assert sorted(p.name for p in parent.iterdir()) == ['keep.txt', 'tiny']
    assert sorted(p.name for p in (parent/'tiny').iterdir()) == ['mine.txt', 'train', 'valid']
    assert leftovers(tmp_path) == [] and leftovers(parent) == []


def test_extract_keeps_inside_links(tmp_path):
    arc = make_tar(tmp_path/'a.tgz', TINY_MEMBERS + [('tiny/sym', link('train/a.txt')),
                                                    ('tiny/hard', link('tiny/train/a.txt', tarfile.LNKTYPE)),
                                                    ('tiny/up', link('..'))])
    dest = extract_archive(arc, tmp_path/'out')
    assert (dest/'tiny'/'sym').read_bytes() == b'a' * 100 and (dest/'tiny'/'hard').read_bytes() == b'a' * 100
    assert os.readlink(dest/'tiny'/'up') == '..'


def _hostile(tmp_path):
    outside = tmp_path/'outside'
    return {
        'dotdot': ([('ok.txt', b'x'), ('../outside/evil', b'x')], "'..'"),
        'dotdot_inner': ([('a/../../outside/evil', b'x')], "'..'"),
        'absolute': ([(str(outside/'evil'), b'x')], 'absolute'),
        'backslash_dotdot': ([('a\\..\\..\\evil', b'x')], "'..'"),
        'symlink_out': ([('sym', link('../outside'))], 'outside the destination'),
        'symlink_absolute': ([('sym', link(str(outside)))], 'outside the destination'),
        'write_through_symlink': ([('sym', link('sub')), ('sym/evil', b'x')], 'under a symlink'),
        'chained_symlink': ([('d', None), ('d/l', link('..')), ('x', link('d/l/../../outside'))], 'outside the destination'),
        'hardlink_out': ([('h', link('../outside/secret', tarfile.LNKTYPE))], "'..'"),
        'hardlink_absolute': ([('h', link(str(outside/'secret'), tarfile.LNKTYPE))], 'absolute'),
        'hardlink_through_symlink': ([('d', link('.')), ('h', link('d/../outside/secret', tarfile.LNKTYPE))], "'..'"),
        'char_device': ([('null', link('', tarfile.CHRTYPE))], 'device'),
        'block_device': ([('sda', link('', tarfile.BLKTYPE))], 'device'),
        'fifo': ([('pipe', link('', tarfile.FIFOTYPE))], 'FIFO'),
    }

HOSTILE = ['dotdot', 'dotdot_inner', 'absolute', 'backslash_dotdot', 'symlink_out', 'symlink_absolute',
           'write_through_symlink', 'chained_symlink', 'hardlink_out', 'hardlink_absolute', 'hardlink_through_symlink',
           'char_device', 'block_device', 'fifo']

@pytest.mark.parametrize('case', HOSTILE)
def test_hostile_tar_refused(tmp_path, case):
    members, reason = _hostile(tmp_path)[case]
    (tmp_path/'outside').mkdir(); (tmp_path/'outside'/'secret').write_text('secret')
    arc = make_tar(tmp_path/'evil.tgz', members)
    with pytest.raises(UnsafeArchiveError, match='nothing was extracted') as err:
        extract_archive(arc, tmp_path/'work'/'dest')
    assert reason in str(err.value) and 'evil.tgz' in str(err.value)
    assert not (tmp_path/'work').exists()                        # not even the parent was created
    assert sorted(p.name for p in (tmp_path/'outside').iterdir()) == ['secret']


def test_hostile_zip_refused(tmp_path):
    for name in ['../evil', '/abs/evil', 'a/../../evil']:
        arc = tmp_path/'evil.zip'
        with zipfile.ZipFile(arc, 'w') as zf: zf.writestr('ok.txt', b'ok'); zf.writestr(name, b'x')
        with pytest.raises(UnsafeArchiveError, match='nothing was extracted'): extract_archive(arc, tmp_path/'work'/'dest')
        assert not (tmp_path/'work').exists()


def test_bad_archives(tmp_path):
    (tmp_path/'plain.txt').write_text('not an archive')
    with pytest.raises(ValueError, match='plain.txt.*neither a tar nor a zip'): extract_archive(tmp_path/'plain.txt', tmp_path/'d')
    with pytest.raises(FileNotFoundError, match='nope.tgz'): extract_archive(tmp_path/'nope.tgz', tmp_path/'d')
    big = make_tar(tmp_path/'big.tgz', [(f'tiny/{i}.bin', os.urandom(20_000)) for i in range(20)])
    (tmp_path/'cut.tgz').write_bytes(big.read_bytes()[:len(big.read_bytes()) // 2])
    with pytest.raises(ValueError, match='cut.tgz'): extract_archive(tmp_path/'cut.tgz', tmp_path/'d')
    assert not (tmp_path/'d').exists() and leftovers(tmp_path) == []


def _fail_after(n, monkeypatch):
    "Make tarfile raise while writing its (n+1)-th file, as a crash or Ctrl-C would; set `.n = None` on the result to stop."
    real, state = tarfile.TarFile.makefile, SimpleNamespace(calls=[], n=n)
    def makefile(self, tarinfo, targetpath):
        state.calls.append(targetpath)
        if state.n is not None and len(state.calls) > state.n: raise KeyboardInterrupt('interrupted')
        return real(self, tarinfo, targetpath)
    monkeypatch.setattr(tarfile.TarFile, 'makefile', makefile)
    return state


def test_interrupted_extraction_leaves_nothing(tmp_path, monkeypatch):
    arc = make_tar(tmp_path/'a.tgz', [(f'tiny/{i}.txt', b'x') for i in range(10)])
    state = _fail_after(3, monkeypatch)
    with pytest.raises(KeyboardInterrupt): extract_archive(arc, tmp_path/'dest')
    assert len(state.calls) == 4                                       # some files were written before the interruption
    assert not (tmp_path/'dest').exists() and leftovers(tmp_path) == []


# ---------------------------------------------------------------- untar_data

def _tiny_url(server, name='tiny.tgz', members=TINY_MEMBERS):
    arc = make_tar(server.root/name, members)
    return f'{server.url}/{name}', file_sha256(arc)


def test_untar_download(home, server, monkeypatch):
    url, digest = _tiny_url(server)
    path = untar_data(url, sha256=digest)
    assert path == data_path()/'tiny' and sorted(p.name for p in path.iterdir()) == ['train', 'valid']
    assert (archive_path()/'tiny.tgz').is_file() and server.requests == ['/tiny.tgz']
    assert (data_path()/'.tiny.complete').read_text().splitlines() == [f'{digest}  tiny.tgz', 'train/a.txt', 'valid/b.txt']
    # the second call trusts the marker: no request, no hashing, no extraction
    monkeypatch.setattr(ext, 'file_sha256', lambda *a, **k: pytest.fail('hashed again'))
    monkeypatch.setattr(ext, 'extract_archive', lambda *a, **k: pytest.fail('extracted again'))
    assert untar_data(url, sha256=digest) == path and len(server.requests) == 1


def test_untar_force_download_refetches(home, server):
    url, _ = _tiny_url(server)
    path = untar_data(url)
    make_tar(server.root/'tiny.tgz', [('tiny/new.txt', b'new')])     # the server now has a newer archive
    assert sorted(p.name for p in untar_data(url).iterdir()) == ['train', 'valid']
    assert len(server.requests) == 1
    assert sorted(p.name for p in untar_data(url, force_download=True).iterdir()) == ['new.txt']
    assert len(server.requests) == 2 and path == data_path()/'tiny'


def test_untar_force_download_keeps_the_users_files(home, server):
    "A refresh replaces the dataset's files, and never deletes what the user saved there (learn.path/models ...)."
    url, _ = _tiny_url(server)
    path = untar_data(url)
    (path/'models').mkdir(); (path/'models'/'stage-1.pth').write_bytes(b'weights')
    (path/'train'/'notes.txt').write_text('mine')
    make_tar(server.root/'tiny.tgz', [('tiny/new.txt', b'new')])
    with pytest.warns(UserWarning, match='2 file.*kept'): untar_data(url, force_download=True)
    assert (path/'models'/'stage-1.pth').read_bytes() == b'weights' and (path/'train'/'notes.txt').read_text() == 'mine'
    assert not (path/'train'/'a.txt').exists() and (path/'new.txt').is_file()   # the old dataset's own file went


def test_tar_with_a_file_and_a_folder_of_one_name_is_refused(tmp_path):
    arc = make_tar(tmp_path/'a.tgz', [('tiny/x', b'a file'), ('tiny/x/y.txt', b'under it')])
    with pytest.raises(UnsafeArchiveError, match="'tiny/x/y.txt' lies under 'tiny/x'"): extract_archive(arc, tmp_path/'out')
    assert not (tmp_path/'out').exists()


def test_untar_checksum_mismatch_leaves_nothing(home, server):
    url, digest = _tiny_url(server)
    with pytest.raises(ChecksumError) as err: untar_data(url, sha256='f' * 64)
    assert 'tiny.tgz' in str(err.value) and 'f' * 64 in str(err.value) and digest in str(err.value)
    assert not (archive_path()/'tiny.tgz').exists() and leftovers(archive_path()) == []
    assert not (data_path()/'tiny').exists() and not (data_path()/'.tiny.complete').exists()


def test_untar_interrupted_then_resumed(home, server, monkeypatch):
    url, _ = _tiny_url(server, members=[(f'tiny/{i}.txt', b'x') for i in range(10)])
    state = _fail_after(2, monkeypatch)
    with pytest.raises(KeyboardInterrupt): untar_data(url)
    assert not (data_path()/'tiny').exists() and not (data_path()/'.tiny.complete').exists() and leftovers(data_path()) == []
    state.n = None
    path = untar_data(url)                                            # the archive is reused from the cache
    assert len(list(path.iterdir())) == 10 and len(server.requests) == 1


def test_untar_reextracts_when_folder_removed(home, server):
    url, _ = _tiny_url(server)
    path = untar_data(url)
    (path/'valid'/'b.txt').unlink(); (data_path()/'.tiny.complete').unlink()  # no marker: not complete
    assert (untar_data(url)/'valid'/'b.txt').is_file() and len(server.requests) == 1


def test_untar_offline_lookup(home, tmp_path, monkeypatch, server):
    "An archive under a registered name in RESTORELAB_ARCHIVE is used (after its hash checks out) before any download."
    offline = tmp_path/'offline'
    small = make_tar(offline/'tiny_small.tgz', TINY_MEMBERS)
    url = DatasetURL(f'{server.url}/tiny.tgz', offline={'tiny_small.tgz': file_sha256(small)})
    assert not is_available(url)
    monkeypatch.setenv('RESTORELAB_ARCHIVE', str(offline))
    assert is_available(url)
    path = untar_data(url)
    assert path == data_path()/'tiny' and sorted(p.name for p in path.iterdir()) == ['train', 'valid']
    assert server.requests == [] and not archive_path().exists()
    assert small.is_file()                                            # offline folders are only read
    untar_data(url, force_download=True)
    assert server.requests == [] and small.is_file()


def test_untar_offline_wrong_content_is_an_error(home, tmp_path, monkeypatch, server):
    offline = tmp_path/'offline'
    good = make_tar(tmp_path/'good.tgz', TINY_MEMBERS)
    make_tar(offline/'tiny_small.tgz', [('tiny/evil.txt', b'tampered')])
    url = DatasetURL(f'{server.url}/tiny.tgz', offline={'tiny_small.tgz': file_sha256(good)})
    monkeypatch.setenv('RESTORELAB_ARCHIVE', str(offline))
    with pytest.raises(ChecksumError) as err: untar_data(url)
    msg = str(err.value)
    assert str(offline/'tiny_small.tgz') in msg and file_sha256(good) in msg and file_sha256(offline/'tiny_small.tgz') in msg
    assert server.requests == [] and not (data_path()/'tiny').exists()


@needs_shared
def test_untar_wrong_content_under_shipped_name(home, tmp_path, monkeypatch):
    offline = tmp_path/'offline'
    make_tar(offline/'mnist_png.tgz', [('mnist_png/training/0/1.png', b'not a png')])
    monkeypatch.setenv('RESTORELAB_ARCHIVE', str(offline))
    with pytest.raises(ChecksumError, match=URLs.MNIST.offline['mnist_png.tgz']): untar_data(URLs.MNIST)
    assert not (data_path()/'mnist_png').exists()


def test_untar_own_cache_trusted_without_published_hash(home, server):
    "A download with no published hash, cached under the name of an offline stand-in, is found again after force-less reruns."
    url, _ = _tiny_url(server)
    stand_in = DatasetURL(url, offline={'tiny.tgz': '0' * 64})      # same name as the download, another hash
    path = untar_data(stand_in)
    (data_path()/'.tiny.complete').unlink()
    assert untar_data(stand_in) == path and len(server.requests) == 1


def test_untar_local_archive(home, tmp_path):
    arc = make_tar(tmp_path/'src'/'tiny.tgz', TINY_MEMBERS)
    assert sorted(p.name for p in untar_data(arc).iterdir()) == ['train', 'valid']
    assert sorted(p.name for p in untar_data(arc.as_uri(), force_download=True).iterdir()) == ['train', 'valid']
    assert arc.is_file() and not archive_path().exists()            # read in place, never copied or deleted
    with pytest.raises(ChecksumError, match='tiny.tgz'): untar_data(str(arc), sha256='0' * 64, force_download=True)


@pytest.mark.slow
@needs_shared
def test_untar_real_mnist(home, monkeypatch):
    monkeypatch.setenv('RESTORELAB_ARCHIVE', str(SHARED))
    path = untar_data(URLs.MNIST)
    assert path == data_path()/'mnist_png' and sorted(p.name for p in path.iterdir()) == ['testing', 'training']
    assert len(list((path/'testing'/'7').iterdir())) == 1028
    assert untar_data(URLs.MNIST) == path
