"""Packaging for archnb: every setting comes from settings.ini (nbdev 2)."""
from configparser import ConfigParser
from pathlib import Path
import setuptools

here = Path(__file__).parent
cfg = ConfigParser(delimiters=['='])
cfg.read(here / 'settings.ini', encoding='utf-8')
cfg = cfg['DEFAULT']

licenses = {'apache2': ('Apache Software License 2.0', 'OSI Approved :: Apache Software License')}
lic = licenses[cfg['license']]
statuses = ['1 - Planning', '2 - Pre-Alpha', '3 - Alpha', '4 - Beta', '5 - Production/Stable']
min_python = cfg['min_python']
py_versions = [v for v in ['3.10', '3.11', '3.12', '3.13'] if tuple(map(int, v.split('.'))) >= tuple(map(int, min_python.split('.')))]

setuptools.setup(
    name=cfg['lib_name'],
    version=cfg['version'],
    description=cfg['description'],
    long_description=(here / 'README.md').read_text(encoding='utf-8'),
    long_description_content_type='text/markdown',
    author=cfg['author'],
    author_email=cfg['author_email'],
    license=lic[0],
    url=cfg['git_url'],
    classifiers=[
        'Development Status :: ' + statuses[int(cfg['status']) - 1],
        'Intended Audience :: ' + cfg['audience'],
        'License :: ' + lic[1],
        'Natural Language :: ' + cfg['language'],
    ] + ['Programming Language :: Python :: ' + v for v in py_versions],
    keywords=cfg['keywords'].split(),
    python_requires='>=' + min_python,
    # The presets (presets/*.json) and lm-eval's StreetMath tasks (lm_eval_tasks/) live at the repo root and ship
    # inside the package as archnb/presets and archnb/lm_eval_tasks.
    packages=setuptools.find_packages(include=['archnb', 'archnb.*']) + ['archnb.presets', 'archnb.lm_eval_tasks'],
    package_dir={'archnb.presets': 'presets', 'archnb.lm_eval_tasks': 'lm_eval_tasks'},
    package_data={'archnb.presets': ['*.json'], 'archnb.lm_eval_tasks': ['streetmath/*.yaml', 'streetmath/*.py']},
    include_package_data=True,
    install_requires=cfg['requirements'].split(),
    extras_require={'dev': cfg['dev_requirements'].split(), 'lm-eval': cfg['lm_eval_requirements'].split()},
    entry_points={
        'console_scripts': cfg['console_scripts'].split(),
        'nbdev': [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"],
    },
    zip_safe=False,
)
