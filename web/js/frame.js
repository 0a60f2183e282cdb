// The frame loop: rendering is batched, so requestFrame() asks for one run of the frame handler (main.js installs
// it: apply the queued messages, render what changed) in the next animation frame, however often it is called.

let frameRequested = false;
let handler = () => {};

export function setFrameHandler(fn) {
  handler = fn;
}

export function requestFrame() {
  if (!frameRequested) {
    frameRequested = true;
    requestAnimationFrame(runFrame);
  }
}

function runFrame() {
  frameRequested = false;
  handler();
}
