"""The page's CSS (one place): status and notices, the sticky results column, previews and the SVG figure."""

CSS = """
.run-status {min-height: 2.6em; padding: 6px 10px; border-radius: 8px; background: var(--block-background-fill);}
.run-notices:empty {display: none;}
.run-notices {border-left: 4px solid #e0a100; padding: 2px 10px;}
.tab-intro p {margin: 0.2em 0;}
.method-note {font-size: 0.85em; opacity: 0.8;}
.progress-slot {min-height: 12px;}
#env-banner {border-left: 4px solid #e0a100; padding: 4px 12px; background: var(--block-background-fill);}
#env-banner.ok {border-left-color: #2e9d4c;}
/* the results stay in view while a person scrolls the settings (wide screens; narrow ones stack the columns) */
@media (min-width: 760px) {.results-col {position: sticky; top: 8px; align-self: flex-start;}}
.svg-result {display: flex; flex-direction: column; align-items: center; margin: 0; padding: 8px;}
.svg-result img {width: 100%; max-width: 240px; height: auto; background: white; border: 1px solid #ddd;}
.svg-result figcaption {font-size: 0.8em; opacity: 0.7;}
.preview img {width: 100%; height: 100%; object-fit: contain;}
.files .file-name, .files td {overflow-wrap: anywhere; white-space: normal !important;}
#image-preview-a img, #image-preview-b img {image-rendering: pixelated;}
"""
