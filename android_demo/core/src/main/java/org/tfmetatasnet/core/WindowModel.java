package org.tfmetatasnet.core;

/**
 * The model on one window: the seam where the app plugs in the LiteRT interpreter and the
 * tests plug in a fake model.
 */
public interface WindowModel {
    /**
     * Separates one window of one channel.
     *
     * @param inputs one mono waveform per model input, in input order: {@code inputs[i]} has
     *     {@code window x factor_i} samples (normalised; see {@link InstrumentSeparator})
     * @return the instrument's waveform, {@code window x outFactor} samples
     */
    float[] run(float[][] inputs);
}
