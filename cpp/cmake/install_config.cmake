# Writes voxcoreConfig.cmake once the CUDA decision is known (included from cuda/CMakeLists.txt).
configure_package_config_file(${PROJECT_SOURCE_DIR}/cpp/cmake/voxcoreConfig.cmake.in
  ${PROJECT_BINARY_DIR}/voxcoreConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/voxcore)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/voxcoreConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/voxcoreConfig.cmake ${PROJECT_BINARY_DIR}/voxcoreConfigVersion.cmake
  ${PROJECT_SOURCE_DIR}/cpp/cmake/voxcoreCodecs.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/voxcore COMPONENT cpp)
