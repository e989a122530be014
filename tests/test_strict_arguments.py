"""A keyword argument that is accepted and ignored is a bug: a typo, or an option restorelab does not have, must raise a
`TypeError` naming it, at the call that takes it (not later, deep in a batch)."""
import pytest
import torch

from restorelab.data.core import ItemList, CategoryList, FloatList, TensorList
from restorelab.data.bunch import DataBunch
from restorelab.data.transforms import can_batch, rand_pad
from restorelab.data.vision import ImageList
from restorelab.data.segmentation import SegmentationLabelList
from restorelab.recorder import Recorder
from restorelab.test_utils import synth_dbunch, synth_learner, synth_segmentation
from restorelab.vision.learner import unet_learner


@pytest.fixture(scope='module')
def folder(tmp_path_factory):
    return synth_segmentation(tmp_path_factory.mktemp('seg'), n_train=4, n_valid=2, size=(16, 16), n_classes=3)


def _lists():
    xs = [torch.randn(1) for _ in range(6)]
    return TensorList(xs).split_by_idx([4, 5]).label_from_lists([0., 1., 0., 1.], [0., 1.], label_cls=FloatList)


@pytest.mark.parametrize('call, name', [
    (lambda f: ImageList.from_folder(f, presort=True), 'presort'),                 # v1's flag; the files are always sorted
    (lambda f: ImageList.from_folder(f, convert_mod='L'), 'convert_mod'),
    (lambda f: ImageList([f/'train'/'img000.png'], convert_mod='L'), 'convert_mod'),
    (lambda f: ItemList([1, 2], paht='.'), 'paht'),
    (lambda f: CategoryList(['a'], clases=['a']), 'clases'),
    (lambda f: FloatList([1.], classes=['a']), 'classes'),                        # regression targets have no classes
    (lambda f: SegmentationLabelList([f/'trainannot'/'img000.png'], codes=['a']), 'codes'),
    (lambda f: _lists().add_test([torch.randn(1)], label=0.), 'label'),
    (lambda f: _lists().transform(([], []), sze=8), 'sze'),
    (lambda f: _lists().databunch(bs=2, nworkers=0), 'nworkers'),
    (lambda f: DataBunch.create(_lists().train, _lists().valid, bs=2, shuffle=False), 'shuffle'),
    (lambda f: synth_dbunch().valid_dl.new(batch_size=4), 'batch_size'),
    (lambda f: Recorder(train_metrics=True), 'train_metrics'),
    (lambda f: can_batch(rand_pad(3, 28), tfm_y=True), 'tfm_y'),
    (lambda f: synth_learner(metric=[]), 'metric'),
    (lambda f: synth_learner().fit(1, 0.1, wd_bn=0.), 'wd_bn'),
])
def test_unknown_keyword_is_an_error_naming_it(folder, call, name):
    with pytest.raises(TypeError, match=name): call(folder)


def test_factory_keyword_typo(folder):
    data = (ImageList.from_folder(folder, include=['train', 'val']).split_by_folder(valid='val')
            .label_from_func(lambda o: o.stem[-1]).transform(size=16).databunch(bs=2))
    with pytest.raises(TypeError, match='self_atention'): unet_learner(data, 'resnet18', pretrained=False, self_atention=True)



def test_recorder_plot_passes_its_keywords_on():
    "`Recorder.plot(**kwargs)` styles the curve (v1 took them and did nothing with them); a typo is matplotlib's error."
    import matplotlib; matplotlib.use('Agg')
    learn = synth_learner()
    learn.lr_find(num_it=12)
    fig = learn.recorder.plot(skip_start=0, skip_end=0, return_fig=True, color='red')
    assert fig.axes[0].lines[0].get_color() == 'red'
    with pytest.raises(AttributeError, match='colour'): learn.recorder.plot(colour='red')
