package qwen.service.metrics;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;

/** One scrape of a Prometheus text page, read by sample name and label text. */
public record PrometheusText(String page) {

    /** GETs the page; fails unless it answers 200. */
    public static PrometheusText scrape(URI uri) {
        try (HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build()) {
            HttpResponse<String> response = http.send(HttpRequest.newBuilder(uri).timeout(Duration.ofSeconds(20)).build(),
                    HttpResponse.BodyHandlers.ofString());
            if (response.statusCode() != 200) {
                throw new AssertionError(uri + " answered " + response.statusCode() + ": " + response.body());
            }
            return new PrometheusText(response.body());
        } catch (IOException e) {
            throw new AssertionError("cannot scrape " + uri + ": " + e, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }

    /**
     * The sum of the samples named {@code name} whose labels contain {@code labelText} ("" for
     * any); NaN when there is none.
     */
    public double value(String name, String labelText) {
        double sum = 0;
        boolean found = false;
        for (String line : page.split("\n")) {
            if (line.startsWith("#") || !line.startsWith(name)) {
                continue;
            }
            String rest = line.substring(name.length());
            String labels = "";
            if (rest.startsWith("{")) {
                int close = rest.indexOf('}');
                labels = rest.substring(1, close);
                rest = rest.substring(close + 1);
            }
            if (!rest.startsWith(" ") || !labels.contains(labelText)) {
                continue;
            }
            sum += Double.parseDouble(rest.strip().split(" ")[0]);
            found = true;
        }
        return found ? sum : Double.NaN;
    }

    /** The sample lines whose names start with {@code prefix}, for failure messages. */
    public String lines(String prefix) {
        StringBuilder out = new StringBuilder();
        for (String line : page.split("\n")) {
            if (line.startsWith(prefix)) {
                out.append(line).append('\n');
            }
        }
        return out.toString();
    }

    /** {@link #value(String, String)} over every label set. */
    public double value(String name) {
        return value(name, "");
    }
}
