// The module libattrlab_ximgproc.so (attributions/CMakeLists.txt): see segmentation_ximgproc.h.
#include "attributions/segmentation_ximgproc.h"

#include <opencv2/ximgproc/segmentation.hpp>
#include <opencv2/ximgproc/slic.hpp>

extern "C" {

void attrlab_ximgproc_felzenszwalb(const cv::Mat& rgb, double sigma, float k, int min_size, cv::Mat& labels) {
  auto gs = cv::ximgproc::segmentation::createGraphSegmentation(sigma, k, min_size);
  gs->processImage(rgb, labels);
}

void attrlab_ximgproc_slic(const cv::Mat& lab, int region_size, float ruler, int iterations, int min_size_percent,
                           cv::Mat& labels) {
  auto sp = cv::ximgproc::createSuperpixelSLIC(lab, cv::ximgproc::SLIC, region_size, ruler);
  sp->iterate(iterations);
  if (min_size_percent > 0) sp->enforceLabelConnectivity(min_size_percent);
  sp->getLabels(labels);
}

}
