/* The numpy glue around the COCO kernels, in C: compiled with eval/coco_native.c into the same library.
 *
 * finish_results turns the scanner's rows into the arrays of eval.matching.FlatDets (what
 * eval.coco_io.read_coco_results_flat computed with ~10 numpy passes, 0.04 s for 500,000 results);
 * pooled_order merges the per-class accumulation order into the pooled curve's order (what a second
 * radix sort of every counted detection did). Same flags as coco_native.c: every double is the one numpy
 * computes (x + w, w * h: one IEEE operation each).
 */
#include <stdint.h>
#include <stdlib.h>

/* Rows ids (n, 2) = (image id, category id) and values (n, 5) = (x, y, w, h, score) -> image / label indices
 * (through tables indexed by id - lo, -1 for an id not in the ground truth), boxes (n, 4) x1 y1 x2 y2, box
 * area w * h and scores. Returns 0, or the 1-based row of the first problem (w <= 0 or h <= 0, an unknown
 * id): the caller then runs the numpy checks that word the message. */
int64_t finish_results(int64_t n, const int64_t *ids, const double *values, const int64_t *img_table,
                       int64_t img_lo, int64_t img_size, const int64_t *cat_table, int64_t cat_lo, int64_t cat_size,
                       int64_t *image, int64_t *label, double *boxes, double *area, double *scores) {
    for (int64_t i = 0; i < n; i++) {
        const double *v = values + i * 5;
        if (v[2] <= 0 || v[3] <= 0) return i + 1;
        int64_t im = ids[i * 2] - img_lo, ca = ids[i * 2 + 1] - cat_lo;
        if (ids[i * 2] < img_lo || im >= img_size || ids[i * 2 + 1] < cat_lo || ca >= cat_size) return i + 1;
        im = img_table[im];
        ca = cat_table[ca];
        if (im < 0 || ca < 0) return i + 1;
        image[i] = im;
        label[i] = ca;
        double *b = boxes + i * 4;
        b[0] = v[0];
        b[1] = v[1];
        b[2] = v[0] + v[2];
        b[3] = v[1] + v[3];
        area[i] = v[2] * v[3];
        scores[i] = v[4];
    }
    return 0;
}

/* An unsigned key whose ascending order is the descending order of s; -0.0 and 0.0 get the same key
 * (the key of argsort_descending in coco_native.c). */
static uint64_t score_key(double s) {
    union { double d; uint64_t u; } x;
    if (s == 0.0) s = 0.0;
    x.d = s;
    return ~((x.u >> 63) ? ~x.u : (x.u | 0x8000000000000000ULL));
}

/* rows (m,) lists detections class by class (class_start (K + 1,) cuts it), each class by descending
 * score; out (m,) gets the same rows by descending score, equal scores by class, then as in rows: exactly
 * a stable sort of rows by -scores[rows[i]] (a K-way merge; a binary heap of the classes' heads). */
int64_t pooled_order(const int64_t *rows, const int64_t *class_start, int64_t num_classes, const double *scores,
                     int64_t *out) {
    int64_t *heap = malloc(sizeof(int64_t) * (size_t)(num_classes + 1));
    int64_t *at = malloc(sizeof(int64_t) * (size_t)(num_classes + 1));
    uint64_t *head = malloc(sizeof(uint64_t) * (size_t)(num_classes + 1));
    uint64_t *key = malloc(sizeof(uint64_t) * (size_t)(class_start[num_classes] + 1));
    if (!heap || !at || !head || !key) {
        free(heap); free(at); free(head); free(key);
        return -1;
    }
    for (int64_t i = 0; i < class_start[num_classes]; i++) key[i] = score_key(scores[rows[i]]); /* one gather */
    int64_t size = 0, m = 0;
#define BEFORE(a, b) (head[a] < head[b] || (head[a] == head[b] && (a) < (b)))
    for (int64_t k = 0; k < num_classes; k++) {
        at[k] = class_start[k];
        if (at[k] >= class_start[k + 1]) continue;
        head[k] = key[at[k]];
        int64_t i = size++; /* sift up */
        while (i > 0 && BEFORE(k, heap[(i - 1) / 2])) { heap[i] = heap[(i - 1) / 2]; i = (i - 1) / 2; }
        heap[i] = k;
    }
    while (size > 0) {
        int64_t k = heap[0];
        out[m++] = rows[at[k]++];
        if (at[k] < class_start[k + 1]) {
            head[k] = key[at[k]];
        } else {
            k = heap[--size];
        }
        int64_t i = 0; /* sift k down from the root */
        for (;;) {
            int64_t c = 2 * i + 1;
            if (c >= size) break;
            if (c + 1 < size && BEFORE(heap[c + 1], heap[c])) c++;
            if (!BEFORE(heap[c], k)) break;
            heap[i] = heap[c];
            i = c;
        }
        if (size > 0) heap[i] = k;
    }
#undef BEFORE
    free(heap); free(at); free(head); free(key);
    return m;
}
