"""The page's CSS (one place): status and notices, the sticky results column, previews and the SVG figure, and the
narrow layout (below 1000 px the two columns stack; tables wrap between words and scroll when still too wide)."""

NARROW_PX = 1000  # below this width the settings and the results stack (the browser test checks 800 px)

CSS = """
.run-status {min-height: 2.6em; padding: 6px 10px; border-radius: 8px; background: var(--block-background-fill);}
/* the notices box: Gradio puts the class on the block and on the text inside it; only a filled text gets the rule */
.block.run-notices {border: none !important; padding: 0 !important;}
.block.run-notices:has(.md:empty) {display: none !important;}
.prose.run-notices {border-left: 4px solid #e0a100; padding: 2px 10px;}
.tab-intro p {margin: 0.2em 0;}
.method-note {font-size: 0.85em; opacity: 0.8;}
.progress-slot {min-height: 12px;}
#env-banner {border-left: 4px solid #e0a100; padding: 4px 12px; background: var(--block-background-fill);}
#env-banner.ok {border-left-color: #2e9d4c;}
/* the results stay in view while a person scrolls the settings (wide screens; narrow ones stack the columns) */
@media (min-width: {wide}px) {.results-col {position: sticky; top: 8px; align-self: flex-start;}}
@media (max-width: {narrow}px) {
  .tab-body {flex-direction: column !important; flex-wrap: nowrap !important;}
  .tab-body > .column {width: 100% !important; min-width: 0 !important; flex: 1 1 auto !important;}
}
/* tables (the metrics report) break lines between words, never inside one; wider than the column, they scroll */
.prose table {display: block; max-width: 100%; overflow-x: auto;}
.prose th, .prose td {word-break: normal !important; overflow-wrap: normal !important; min-width: 4.5em;}
/* a dropdown's caret keeps its distance from the text */
.secondary-wrap .icon-wrap {margin-left: 8px; flex-shrink: 0;}
.svg-result {display: flex; flex-direction: column; align-items: center; margin: 0; padding: 8px;}
.svg-result img {width: 100%; max-width: 240px; height: auto; background: white; border: 1px solid #ddd;}
.svg-result figcaption {font-size: 0.8em; opacity: 0.7;}
.preview img {width: 100%; height: 100%; object-fit: contain;}
.files .file-name, .files td {overflow-wrap: anywhere; white-space: normal !important;}
#image-preview-a img, #image-preview-b img {image-rendering: pixelated;}
/* a 3D viewer with no model to show: out of the layout but mounted (Gradio's Model3D first mounted hidden never
   draws its canvas once shown) */
.no-model {display: none !important;}
""".replace("{wide}", str(NARROW_PX + 1)).replace("{narrow}", str(NARROW_PX))
