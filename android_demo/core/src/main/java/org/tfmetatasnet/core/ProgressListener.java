package org.tfmetatasnet.core;

/** Told how far a separation has got; may throw to cancel it. */
public interface ProgressListener {
    /** Called after each window with the work done and the total (same units, e.g. base samples). */
    void progress(long done, long total);
}
