package qwen.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/** The reductions the benchmark reports are built from. */
class FiguresTest {

    @Test
    void medianOfOddAndEvenCountsLeavesTheInputAlone() {
        double[] v = {5, 1, 3};
        assertEquals(3, Figures.median(v));
        assertEquals(5, v[0], "the input is not sorted in place");
        assertEquals(2.5, Figures.median(4, 1, 2, 3));
        assertEquals(7, Figures.median(List.of(9.0, 7.0, 1.0)));
        assertThrows(IllegalArgumentException.class, Figures::median);
    }

    @Test
    void percentileIsTheNearestRank() {
        List<Double> v = List.of(10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0);
        assertEquals(50, Figures.percentile(v, 50));
        assertEquals(100, Figures.percentile(v, 99));
        assertEquals(10, Figures.percentile(v, 1));
        assertTrue(Double.isNaN(Figures.percentile(List.of(), 50)));
    }

    @Test
    void roundKeepsTwoDecimals() {
        assertEquals(1.23, Figures.round(1.2349));
        assertEquals(1.24, Figures.round(1.235001));
        assertEquals(-0.5, Figures.round(-0.5));
    }
}
