package org.tfmetatasnet.core;

/**
 * One model call's piece of the song, in base samples (Python: {@code tf_metatasnet.inference.apply.Window}).
 */
public final class Window {
    public final int start;       // first sample of the window given to the model
    public final int size;        // window length
    public final int keepStart;   // first sample of the kept region (absolute)
    public final int keepStop;    // end of the kept region (absolute, exclusive)
    public final boolean fadeIn;  // the kept region starts with a fade (it overlaps the previous one)
    public final boolean fadeOut; // the kept region ends with a fade (it overlaps the next one)

    public Window(int start, int size, int keepStart, int keepStop, boolean fadeIn, boolean fadeOut) {
        this.start = start;
        this.size = size;
        this.keepStart = keepStart;
        this.keepStop = keepStop;
        this.fadeIn = fadeIn;
        this.fadeOut = fadeOut;
    }

    @Override
    public String toString() {
        return "Window(start=" + start + ", size=" + size + ", keep=[" + keepStart + ", " + keepStop
                + "), fadeIn=" + fadeIn + ", fadeOut=" + fadeOut + ")";
    }
}
