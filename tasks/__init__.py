"""Task adapters, one module per benchmark family.

``BUILTIN`` is the registry's table of the built-in tasks: id -> "module:Class". A module is imported only when one
of its tasks is used, so a task's optional dependencies (cv2 for Ref-AVS masks and heatmaps) never stand in the way
of another task. Adding a built-in task is adding its module and a line here; other packages add tasks through the
``crab_eval.tasks`` entry-point group, and a user's own folder through ``crab-eval --include DIR``
(crab_eval/registry.py, docs/architecture.md).
"""

BUILTIN: dict[str, str] = {
    "ave": "crab_eval.tasks.ave:AveTask",
    "synth_ave_swap": "crab_eval.tasks.synth_ave_swap:SynthAveSwapTask",
    "avvp": "crab_eval.tasks.avvp:AVVPTask",
    "s4": "crab_eval.tasks.avsbench:S4Task",
    "ms3": "crab_eval.tasks.avsbench:MS3Task",
    "avss": "crab_eval.tasks.avss:AVSSTask",
    "ref_avs": "crab_eval.tasks.ref_avs:RefAVSTask",
    "music_avqa": "crab_eval.tasks.music_avqa:MusicAVQA",
    "avqa": "crab_eval.tasks.avqa:AvqaTask",
    "avcap": "crab_eval.tasks.avcap:AvcapTask",
    "unav": "crab_eval.tasks.unav:UnAVTask",
    "vggss": "crab_eval.tasks.localization:VggssTask",
    "flickr": "crab_eval.tasks.localization:FlickrTask",
    "arig": "crab_eval.tasks.localization:ArigTask",
    "ks": "crab_eval.tasks.classification:KsClassificationTask",
    "ucf": "crab_eval.tasks.classification:UcfClassificationTask",
    "meld": "crab_eval.tasks.classification:MeldClassificationTask",
    "cremad": "crab_eval.tasks.classification:CremadClassificationTask",
    "mafw": "crab_eval.tasks.classification:MafwClassificationTask",
    "dfew": "crab_eval.tasks.classification:DfewClassificationTask",
    "a2v": "crab_eval.tasks.classification:A2vClassificationTask",
    "v2a": "crab_eval.tasks.classification:V2aClassificationTask",
}
