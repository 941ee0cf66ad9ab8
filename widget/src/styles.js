// Styles live in the widget's shadow root, so the host page and the widget cannot
// restyle each other.
export const CSS = `
:host { all: initial; font: 16px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1b1b1b; }
* { box-sizing: border-box; }
button, input { font: inherit; }
:focus-visible { outline: 3px solid #ffbf47; outline-offset: 2px; }
.launcher { position: fixed; right: 20px; bottom: 20px; z-index: 2147483000; border: 0; border-radius: 28px;
  padding: 14px 20px; background: #1d4f91; color: #fff; font-weight: 600; cursor: pointer;
  box-shadow: 0 4px 14px rgba(0,0,0,.25); }
.panel { position: fixed; right: 20px; bottom: 88px; z-index: 2147483000; width: 380px; height: min(620px, calc(100vh - 110px));
  display: flex; flex-direction: column; background: #fff; border-radius: 12px; overflow: hidden;
  box-shadow: 0 8px 30px rgba(0,0,0,.3); }
.panel[hidden] { display: none; }
header { display: flex; align-items: center; gap: 8px; padding: 10px 12px; background: #1d4f91; color: #fff; }
header h2 { flex: 1; margin: 0; font-size: 1rem; }
header button { border: 1px solid rgba(255,255,255,.7); background: transparent; color: #fff; border-radius: 6px; padding: 4px 8px; cursor: pointer; }
.disclaimer { margin: 0; padding: 8px 12px; background: #fff4d6; border-bottom: 1px solid #e8d9a8; font-size: .85rem; }
.status { padding: 2px 12px; font-size: .8rem; color: #555; min-height: 1.2em; }
.log { flex: 1; overflow-y: auto; padding: 12px; }
.messages { display: flex; flex-direction: column; gap: 8px; margin: 0; padding: 0; list-style: none; }
.msg { max-width: 85%; padding: 8px 12px; border-radius: 14px; white-space: normal; overflow-wrap: anywhere; }
.msg.bot { align-self: flex-start; background: #eef1f5; border-bottom-left-radius: 4px; }
.msg.user { align-self: flex-end; background: #1d4f91; color: #fff; border-bottom-right-radius: 4px; }
.msg.crisis { max-width: 100%; background: #fde8e8; border: 2px solid #b00020; color: #3d0008; }
.msg.crisis::before { content: "Urgent help"; display: block; font-weight: 700; color: #b00020; margin-bottom: 4px; }
.msg a { color: #0b3d91; font-weight: 600; }
.msg.crisis a { color: #b00020; display: inline-block; padding: 2px 0; }
.typing { align-self: flex-start; color: #555; font-style: italic; }
.typing[hidden] { display: none; }
.replies { display: flex; flex-wrap: wrap; gap: 6px; padding: 0 12px 8px; }
.replies button { border: 1px solid #1d4f91; background: #fff; color: #1d4f91; border-radius: 16px; padding: 6px 12px; cursor: pointer; }
form { display: flex; gap: 6px; padding: 10px; border-top: 1px solid #ddd; }
form input { flex: 1; min-width: 0; padding: 10px; border: 1px solid #888; border-radius: 8px; }
form button { border: 0; background: #1d4f91; color: #fff; border-radius: 8px; padding: 0 14px; cursor: pointer; }
.sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
@media (max-width: 480px) {
  .panel { right: 0; bottom: 0; width: 100vw; height: 100vh; height: 100dvh; border-radius: 0; }
  .launcher { right: 12px; bottom: 12px; }
  .root.open .launcher { display: none; }
}
`;
